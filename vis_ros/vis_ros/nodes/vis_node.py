"""vis_node: camera frames in, instance masks with persistent track ids out (a lifecycle node).

Lifecycle (ros2/demos lifecycle_py habits):
- constructor: declare every parameter (ros/params.py), handles None; nothing slow.
- configure: read the parameters once into a NodeConfig, load the backend + tracker (slow work
  belongs here), create the publishers, send the latched class table, start /diagnostics.
  A bad parameter or an unavailable backend gives FAILURE with the reason logged.
- activate: input subscription + worker thread (+ the QoS watch), then enable the publishers.
- deactivate: the reverse, then every public track id is announced ended (one ~/instances message
  without instances) and the stream restarts; cleanup / shutdown: `_release()` frees everything
  (safe twice). The shutdown transition ends the process (main() stops spinning).
- a worker still busy after worker_stop_timeout_s: deactivate gives ERROR and the backend is kept
  (freeing it under a running inference is a use-after-free for TensorRT); the node finalizes.
With `autostart: true` the node configures and activates itself, so a launch file or a demo needs
no lifecycle manager.

Streams and ids (core/stream.py): a resolution or encoding change or a backward stamp jump beyond
stream_jump_back_s starts a new stream (backend + tracker reset, live ids ended in the next
message, one warning, new_streams in /diagnostics); a duplicate or slightly older stamp is skipped
and counted (stale_frames). Track ids come from one counter for the whole process: never reused
after a new stream or cleanup -> configure. Unknown parameter names are warned about (close matches
named) or, with strict_params, fail configure; wrongly typed values are logged at start-up.

Topics: input `image` (remap it; sensor_msgs/Image, or CompressedImage with input_type:=compressed),
outputs ~/instances, ~/labels, ~/overlay, ~/detections, ~/classes, /diagnostics (ros/outputs.py,
ros/diagnostics.py). With depth.enabled also inputs `depth` + `camera_info` and output ~/markers
(ros/depth_input.py, ros/markers.py; docs/messages.md).
"""
from __future__ import annotations

import signal
import sys
import time
import traceback
from typing import Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CompressedImage, Image

from vis_ros.core.errors import InputError, VisError
from vis_ros.core.stream import PublicIds, StreamAction, StreamWatch
from vis_ros.core.types import Frame, TrackState
from vis_ros.ros import convert, qos
from vis_ros.ros.depth_input import DepthInput, depth_config
from vis_ros.ros.diagnostics import NodeStats, build_diagnostics
from vis_ros.ros.input_watch import InputWatch
from vis_ros.ros.outputs import Outputs
from vis_ros.ros.params import (NodeConfig, all_param_specs, change_refusal, check_given_names,
                                declare_parameters, read_config)
from vis_ros.ros.prompt_input import PromptInput
from vis_ros.ros.worker import FrameWorker, LatestSlot, SlotItem
from vis_ros.segment.pipeline import Pipeline

_INPUT_TYPES = {'image': (Image, 'sensor_msgs/msg/Image', convert.image_to_rgb),
                'compressed': (CompressedImage, 'sensor_msgs/msg/CompressedImage', convert.compressed_to_rgb)}


class VisNode(LifecycleNode):
    """Segment + track every (newest) camera frame and publish instances with the source header."""

    def __init__(self, node_name: str = 'vis_node', **kwargs):
        """Declare every parameter; nothing slow happens before configure."""
        super().__init__(node_name, **kwargs)
        self._table = all_param_specs(log=self.get_logger().debug)
        self._startup_errors = declare_parameters(self, self._table)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.finalized = False   # main() stops spinning once the node reaches finalized
        self.exit_code = 0
        self._public = PublicIds()      # lives with the process: ids and their announcements
        self._next_id = 1               # the tracker's id counter, kept across cleanup/configure
        self._stream: Optional[StreamWatch] = None
        self._last_frame = ('', (0, 0))   # frame_id and (height, width) of the last processed frame
        self.config: Optional[NodeConfig] = None
        self._pipeline: Optional[Pipeline] = None
        self._outputs: Optional[Outputs] = None
        self._stats: Optional[NodeStats] = None
        self._diag_pub = self._diag_timer = None
        self._slot: Optional[LatestSlot] = None
        self._worker: Optional[FrameWorker] = None
        self._subscription = self._watch = None
        self._prompt_input: Optional[PromptInput] = None   # ~/prompt, for backends that take prompts
        self._tunables = {}
        self._depth_config = self._depth = None   # issue 15: optional depth input (ros/depth_input.py)
        self._autostart_timer = None
        if self.get_parameter('autostart').value:
            self._autostart_timer = self.create_timer(0.01, self._autostart)
        # last, once every parameter is declared: name the typos and the refused values now
        # (with autostart refused nobody would configure, and the log would stay empty)
        warning = check_given_names(self, self._startup_errors)
        if warning:
            self.get_logger().warning(warning)
        for error in self._startup_errors.values():
            self.get_logger().error(error)

    # ---- lifecycle -------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read parameters, load backend + tracker, create publishers; FAILURE with a reason."""
        log = self.get_logger()
        if self._startup_errors:
            for error in self._startup_errors.values():
                log.error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        try:
            values = {name: self.get_parameter(name).value for name in self._table}
            self.config = read_config(values, self._table)
            self._depth_config = depth_config(self.config.depth_options)
            self._pipeline = Pipeline.build(self.config.backend, self.config.backend_options,
                                            self.config.tracker_options)
            self._pipeline.tracker.continue_ids(self._next_id)   # ids never restart in a process
        except VisError as err:
            log.error(f'configure failed: {err}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # a bug, not a user error: ERROR (rclpy would swallow it silently)
            log.error(f'configure error: {type(err).__name__}: {err}\n{traceback.format_exc()}')
            self._release()
            return TransitionCallbackReturn.ERROR
        info = self._pipeline.backend.info
        self._tunables = {name: values[name] for name, spec in self._table.items() if spec.tunable}
        self._outputs = Outputs(self, self.config, info.class_names)
        self._outputs.publish_classes(info.name)
        self._stats = NodeStats(self.config.latency_window, self.config.diagnostics_window_s)
        self._stream = StreamWatch(self.config.stream_jump_back_s)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
        self._diag_timer = self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics)
        log.info(f'configured: backend {info.name} on {info.device} ({len(info.class_names)} classes)')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the publishers, then start the worker and subscribe to the input."""
        # Publishers first: a frame arriving right after subscribing must not meet a disabled one.
        result = super().on_activate(state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        try:
            self._start_processing()
        except Exception as err:  # a bug: say what failed (rclpy would only say "error"), undo the start
            self.get_logger().error(f'activate error: {type(err).__name__}: {err}\n{traceback.format_exc()}')
            self._stop_processing()
            return TransitionCallbackReturn.ERROR
        return TransitionCallbackReturn.SUCCESS

    def _start_processing(self) -> None:
        msg_type, type_name, _ = _INPUT_TYPES[self.config.input_type]
        requested = qos.make_qos(self.config.input_reliability, self.config.input_depth)
        self._slot = LatestSlot()
        self._stats.mark_active()
        self._worker = FrameWorker(self._slot, self._process, self._min_period_s)
        self._worker.start()
        if self._depth_config is not None:
            self._depth = DepthInput(self, self._depth_config)
        self._watch = InputWatch(self, 'image', requested, type_name, self.config.qos_warn_after_s)
        self._subscription = self.create_subscription(
            msg_type, 'image', self._on_image, requested, event_callbacks=self._watch.event_callbacks())
        self._watch.set_topic(self._subscription.topic_name)
        self._prompt_input = PromptInput(self, self._pipeline)
        self.get_logger().info(f'active: listening on {self._subscription.topic_name} '
                               f'({type_name}, {qos.describe_qos(requested)})')

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking frames, end every public id (announced), then disable the publishers."""
        if not self._stop_processing():
            return TransitionCallbackReturn.ERROR   # on_error keeps the backend the worker still uses
        self._end_stream('deactivated')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the backend and every publisher; back to unconfigured."""
        return TransitionCallbackReturn.SUCCESS if self._release() else TransitionCallbackReturn.ERROR

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, whatever the state we came from; main() then ends the process."""
        if not self._release():
            self.exit_code = 1   # a stuck worker: the process exit frees what it still uses
        self.finalized = True
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything after a failed transition (back to unconfigured), unless still in use.

        A worker that did not stop may still be inside the backend: nothing is freed, the node
        goes to finalized and main() ends the process (exit code 1), which frees it safely.
        """
        log = self.get_logger()
        if self._worker is not None and self._worker.alive:
            log.error(f'error during a transition from {state.label}: the worker is still processing a '
                      'frame; the backend is kept (not freed while in use) and the node finalizes')
            self.finalized, self.exit_code = True, 1
            return TransitionCallbackReturn.FAILURE
        log.error(f'error during a transition from {state.label}; releasing resources')
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _end_stream(self, reason: str) -> None:
        """Announce every public id as ended (one message) and restart the stream; ids go on."""
        if self._pipeline is not None:
            self._pipeline.reset()
        if self._stream is not None:
            self._stream.reset()
        frame_id, size = self._last_frame
        ended = self._public.end_all(self.get_clock().now().nanoseconds, size if min(size) > 0 else (1, 1))
        if ended.ended_ids and self._outputs is not None:
            self._outputs.publish_ended(ended, frame_id)
            self.get_logger().info(f'{reason}: track ids {list(ended.ended_ids)} announced as ended')

    def _stop_processing(self) -> bool:
        """Unsubscribe and stop the worker; False when it is still busy after the timeout."""
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        if self._watch is not None:
            self._watch.destroy()
            self._watch = None
        if self._worker is not None:
            timeout_s = self.config.worker_stop_timeout_s if self.config else 10.0
            if not self._worker.stop(timeout_s=timeout_s):
                self.get_logger().error(f'worker thread did not stop within {timeout_s:g} s (backend '
                                        'stuck?); its backend stays allocated')
                return False
            self._worker = None
        if self._depth is not None:   # after the worker: _process reads it
            self._depth.destroy()
            self._depth = None
        if self._prompt_input is not None:
            self._prompt_input.destroy()
            self._prompt_input = None
        if self._slot is not None:   # keep the counts across deactivate/activate
            self._stats.received_before += self._slot.received
            self._stats.dropped_before += self._slot.dropped
            self._slot = None
        return True

    def _release(self) -> bool:
        """Free everything configure and activate made (safe twice); False, freeing nothing, when busy."""
        if not self._stop_processing():
            return False
        self._end_stream('released')
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        if self._outputs is not None:
            self._outputs.destroy()
            self._outputs = None
        if self._pipeline is not None:
            self._next_id = self._pipeline.tracker.next_id
            self._pipeline.close()
            self._pipeline = None
        self.config = None
        return True

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        self._autostart_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()
        else:
            self.get_logger().error('autostart: configure failed (see above); the node stays unconfigured')

    # ---- parameters ------------------------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        configured = self.config is not None
        for param in params:
            reason = change_refusal(self._table.get(param.name), param, configured)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        for param in params:
            self._startup_errors.pop(param.name, None)   # a good value replaces a refused one
            if param.name in self._tunables:
                self._tunables[param.name] = param.value
        return SetParametersResult(successful=True)

    def _min_period_s(self) -> float:
        rate = self._tunables.get('max_rate_hz', 0.0)
        return 1.0 / rate if rate > 0 else 0.0

    # ---- data path -------------------------------------------------------------------------
    def _on_image(self, msg) -> None:
        # Cheap on purpose: the executor must never wait for inference (convert in the worker).
        slot, stats = self._slot, self._stats
        if slot is None or stats is None:   # a callback racing deactivate: nobody will process it
            return
        stats.input_rate.tick()
        slot.put(msg, self.get_clock().now().nanoseconds)

    def _process(self, item: SlotItem) -> None:
        """Worker thread: convert, segment, track, publish one frame; bad frames are counted."""
        try:
            self._process_frame(item)
        except InputError as err:
            self._stats.add_bad_frame()
            self.get_logger().error(f'bad input frame skipped: {err}', throttle_duration_sec=2.0)
        except Exception as err:  # a backend or output bug must not kill the worker; count, go on
            if not self.context.ok():   # Ctrl-C/shutdown invalidated the context mid-frame: not a bug
                return
            self._stats.add_processing_error()
            self.get_logger().error(f'processing failed: {type(err).__name__}: {err}\n'
                                    f'{traceback.format_exc()}', throttle_duration_sec=2.0)

    def _process_frame(self, item: SlotItem) -> None:
        start_ns = time.monotonic_ns()
        msg = item.msg
        rgb = _INPUT_TYPES[self.config.input_type][2](msg)
        stamp_ns = (item.receive_stamp_ns if self.config.stamp_source == 'receive'
                    else convert.stamp_to_ns(msg.header.stamp))
        if not self._accept(stamp_ns, rgb.shape[:2], getattr(msg, 'encoding', getattr(msg, 'format', ''))):
            return
        frame = Frame(rgb, stamp_ns, msg.header.frame_id)
        convert_ms = (time.monotonic_ns() - start_ns) / 1e6
        result = self._pipeline.process(frame)
        if self._prompt_input is not None:
            self._prompt_input.report()
        shown = self._public.select(result.tracks, publish_tentative=self._tunables['publish_tentative'],
                                    min_score=self._tunables['min_score'])
        estimates, depth_ms = self._depth.estimates(result.tracks) if self._depth else (None, None)
        out_stages = self._outputs.publish(shown, msg.header, frame.image, self._tunables['overlay_alpha'],
                                           estimates=estimates)
        if depth_ms is not None:
            out_stages['depth'] = depth_ms
        self._last_frame = (msg.header.frame_id, frame.image.shape[:2])
        self._record(item, start_ns, convert_ms, result, out_stages)

    def _accept(self, stamp_ns: int, size: tuple[int, int], encoding: str) -> bool:
        """Apply the stream policy: False for a stale frame (counted); a new stream resets first."""
        verdict = self._stream.check(stamp_ns, size, encoding)
        if verdict.action == StreamAction.REJECT:
            self._stats.add_stale_frame()
            self.get_logger().warning(f'stale frame skipped: {verdict.reason}', throttle_duration_sec=5.0)
            return False
        if verdict.action == StreamAction.NEW_STREAM:
            self._pipeline.reset()   # the tracker's live ids go into this frame's ended_ids
            self._stats.new_streams += 1
            self.get_logger().warning(f'new stream: {verdict.reason}; every track ends (ended_ids of '
                                      'the next message) and new tracks get new ids')
        return True

    def _record(self, item: SlotItem, start_ns: int, convert_ms: float, result, out_stages: dict) -> None:
        done_ns = time.monotonic_ns()
        instances_ms = (out_stages.pop('instances_done') - item.received_ns) / 1e6
        stages = {'wait': (start_ns - item.received_ns) / 1e6, 'convert': convert_ms,
                  'instances_out': instances_ms, 'total': (done_ns - item.received_ns) / 1e6,
                  # what the node adds beyond the backend until planners have ~/instances
                  'overhead': instances_ms - result.timings_ms.get('segment', 0.0)}
        for stage, ms in result.timings_ms.items():   # the backend's breakdown nests under segment
            stages[stage if stage in ('segment', 'track') else f'segment.{stage}'] = ms
        stages.update(out_stages)
        self._stats.add_latencies(stages)
        counts = {'confirmed': 0, 'lost': 0, 'tentative': 0}
        for track in result.tracks.tracks:
            if track.state != TrackState.REMOVED:
                counts[track.state.name.lower()] += 1
        self._stats.track_counts = counts
        self._stats.ended_total += len(result.tracks.ended_ids)

    def _publish_diagnostics(self) -> None:
        if self._stats is None or self._pipeline is None:
            return
        info = self._pipeline.backend.info
        slot, stats = self._slot, self._stats
        self._diag_pub.publish(build_diagnostics(
            self.get_fully_qualified_name(), self.get_clock().now().to_msg(), stats,
            received=stats.received_before + (slot.received if slot else 0),
            dropped=stats.dropped_before + (slot.dropped if slot else 0),
            backend=info.name, device=info.device, active=self._subscription is not None,
            stall_s=max(3.0, 3.0 * self._min_period_s()),
            extra=self._depth.diagnostics() if self._depth else ()))


def main(args=None) -> int:
    """Console script `vis_node`: run until SIGINT/SIGTERM or the shutdown transition; exit code.

    rclpy's own signal handler would invalidate the context while the worker may be publishing
    (a "publisher's context is invalid" traceback); ours only asks the loop to stop, and the
    node is released (worker joined, ids announced) before the context goes.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.append(True))
    node = VisNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop and not node.finalized and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.remove_node(node)
        if not node.finalized:
            node._release()
        node.destroy_node()
        rclpy.try_shutdown()
    return node.exit_code


if __name__ == '__main__':
    sys.exit(main())

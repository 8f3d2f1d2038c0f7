# vis_ros: one place to set up, demo and test. Every target sets up from nothing if needed.
# Install layers (scripts/install.sh): runtime (demo, node, tools) < test (+ pytest, torch, onnx,
# flake8, colcon) < dev (+ benchmark extras, peer trackers' venvs). VENV= and PREFIX= pick the dirs.
.PHONY: install install-test install-dev test demo lint bench clean

install:          ## runtime layer: venv + ROS 2 wheels + build vis_ros_msgs + vis_ros editable (idempotent)
	bash scripts/install.sh runtime

install-test:     ## runtime + what the test suite imports
	bash scripts/install.sh test

install-dev:      ## test + benchmark extras + the peer trackers' venvs
	bash scripts/install.sh dev

test:             ## the whole test suite (README's test command; CI runs exactly this)
	bash scripts/test.sh -q

demo: install     ## camera publisher -> vis_node over DDS -> out/demo/{overlay.webm,contact_sheet.png,metrics.json}
	bash -c '. $${PREFIX:-install}/env.sh && vis-ros demo --out out/demo'

lint: install-test  ## flake8 + pep257 (ament style)
	bash -c '. $${PREFIX:-install}/env.sh && python -m pytest vis_ros/test/test_lint_layers.py vis_ros/test/test_lint_style.py -q'

clean:
	rm -rf build install out .venv

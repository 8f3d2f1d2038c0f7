"""Launch vis_node (camera -> instance masks with track ids), optionally with RViz.

    ros2 launch vis_ros vis_ros.launch.py image:=/camera/color/image_raw
    ros2 launch vis_ros vis_ros.launch.py backend:=onnx params_file:=/path/to/my_onnx.yaml use_rviz:=true

Everything else is in the params file (default: the installed config/<backend>.yaml, every
parameter commented there). The node configures and activates itself (autostart: true), so no
lifecycle manager is needed; `ros2 lifecycle set /vis_node deactivate` still works.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'vis_ros'


def generate_launch_description():
    """Four arguments: image, backend, params_file, use_rviz."""
    config_dir = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config'])
    backend = LaunchConfiguration('backend')
    return LaunchDescription([
        DeclareLaunchArgument('image', default_value='/camera/image_raw',
                              description='camera image topic (sensor_msgs/Image; for '
                                          'CompressedImage set input_type: compressed in the params file)'),
        DeclareLaunchArgument('backend', default_value='motion',
                              description='segmentation backend: motion | onnx | litert | tensorrt'),
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([config_dir, [backend, '.yaml']]),
                              description='node parameters (default: installed config/<backend>.yaml)'),
        DeclareLaunchArgument('use_rviz', default_value='false',
                              description='also start RViz showing ~/overlay and ~/labels'),
        # Best-effort camera-size images need a larger Fast DDS shared-memory segment than the
        # default 512 KiB, else most frames are lost in fragmented UDP (see the XML's comment).
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               PathJoinSubstitution([config_dir, 'fastdds_large_shm.xml'])),
        Node(package=PACKAGE, executable='vis_node', name='vis_node', output='screen',
             parameters=[LaunchConfiguration('params_file'), {'autostart': True, 'backend': backend}],
             remappings=[('image', LaunchConfiguration('image'))]),
        Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
             arguments=['-d', PathJoinSubstitution([config_dir, 'vis_ros.rviz'])],
             condition=IfCondition(LaunchConfiguration('use_rviz'))),
    ])

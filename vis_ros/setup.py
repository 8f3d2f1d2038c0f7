"""ament_python setup for vis_ros (also a plain pip-installable package)."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'vis_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*')),
    ],
    package_data={package_name: ['py.typed']},
    install_requires=['setuptools', 'numpy', 'scipy', 'pyyaml', 'tqdm'],
    # `vis-ros suite --ray-address` on a cluster (scripts/requirements-fleet.txt); never needed by the node
    extras_require={'fleet': ['ray>=2.9']},
    zip_safe=True,
    maintainer='vis_ros maintainers',
    maintainer_email='maintainers@vis-ros.dev',
    description='Online video instance segmentation with persistent track ids for ROS 2.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'vis_node = vis_ros.nodes.vis_node:main',
            'vis-ros = vis_ros.tools.cli:main',
        ],
    },
)

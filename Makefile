# vis_ros: one place to set up, demo and test. Every target sets up from nothing if needed.
.PHONY: install test demo lint bench clean

install:          ## venv + ROS 2 wheels + build vis_ros_msgs + vis_ros editable (idempotent)
	bash scripts/install.sh

test:             ## the whole test suite (README's test command; CI runs exactly this)
	bash scripts/test.sh -q

demo: install     ## camera publisher -> vis_node over DDS -> out/demo/{overlay.mp4,contact_sheet.png,metrics.json}
	bash -c '. install/env.sh && vis-ros demo --out out/demo'

lint: install     ## flake8 + pep257 (ament style)
	bash -c '. install/env.sh && python -m pytest vis_ros/test/test_lint_layers.py vis_ros/test/test_lint_style.py -q'

clean:
	rm -rf build install out .venv

# The two commands of the README:  `make run` (main job)  and  `make test` (tests).
# Each creates the virtual environment in .venv when it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-all bench profiles constraints clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/main.py

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) scripts/bench_env.py

# Re-measure the shipped model profiles. The ImageNet-scale models need torchvision, which
# only imports beside torch 2.14.1, so they are profiled in a separate venv (5.5 GB).
PROFILES_VENV := .venv-profiles
$(PROFILES_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(PROFILES_VENV)
	$(PROFILES_VENV)/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1 gymnasium networkx numpy tqdm pyyaml
	$(PROFILES_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

profiles: $(STAMP) $(PROFILES_VENV)/.installed
	$(PY) scripts/profile_models.py --models splitplace_mnist_layer splitplace_fashionmnist_layer splitplace_cifar100_layer splitplace_mnist_semantic splitplace_fashionmnist_semantic splitplace_cifar100_semantic
	$(PROFILES_VENV)/bin/python scripts/profile_models.py --models resnet18 resnet50 mobilenet_v2 mobilenet_v1 vgg16

# Re-pin constraints.txt: the newest versions pyproject.toml's ranges allow, installed into a scratch venv and
# frozen (review the diff, then run `make test`).
LOCK_VENV := .venv-lock
constraints:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[test]'
	{ grep '^#' constraints.txt && $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > constraints.txt.new \
		&& mv constraints.txt.new constraints.txt || { rm -f constraints.txt.new; exit 1; }
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) .pytest_cache

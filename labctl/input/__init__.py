"""Input (pure; imports: base). inventory.yaml and scenario files -> frozen pydantic models:
``yamlpos`` reads YAML with the file:line of every key, ``model`` is the models, ``config``
validates a file into a model with all problems at once.
"""

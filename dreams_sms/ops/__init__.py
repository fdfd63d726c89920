"""The operator's face: the CLI, bulk files, the demo, progress, metrics and the
local stacks it starts."""

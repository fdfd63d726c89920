"""The HTTP API (`dreams-sms serve`): enqueue and read status from any language."""

"""Built-in ``pls`` commands; each module is imported only when its command runs."""

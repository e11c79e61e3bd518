"""The built-in examples, installed as ``adareg.examples`` so that ``adareg demo`` can run them."""

"""The bundled offline sample: fixture sites served on 127.0.0.1 and a small tokenizer."""

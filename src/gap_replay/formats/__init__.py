"""Outputs beside the tokenized JSONL shards: Megatron `.bin/.idx`, Hugging Face parquet + card."""

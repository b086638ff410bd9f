"""Named presets: plain argument dicts over the registered architectures.

``plait models`` lists them; ``plait.zoo.model_config(name)`` shows the full arguments.
"""

from __future__ import annotations

from .catalog import register_preset

register_preset("mlp-mnist", "mlp", "MLP 784-256-128-10 for 28x28 digits", sizes=[784, 256, 128, 10], activation="relu")

register_preset("lenet5", "cnn", "LeNet-5 (ReLU, max pooling) for 1x28x28 images, 10 classes",
                in_channels=1, num_classes=10, image_size=28, channels=[6, 16], kernel_size=5, padding=[2, 0],
                hidden=[120, 84], activation="relu", pool="max_pool2d")

register_preset("cnn-digits", "cnn", "small CNN for scikit-learn's 1x8x8 digits: conv 16 -> pool -> conv 32 -> pool -> 64 -> 10",
                in_channels=1, num_classes=10, image_size=8, channels=[16, 32], kernel_size=3, padding=[1, 1],
                hidden=[64], activation="relu", pool="max_pool2d")

register_preset("resnet8", "resnet", "ResNet-8 (16-32-64, one basic block per stage) for 3x32x32 images",
                in_channels=3, num_classes=10, widths=[16, 32, 64], blocks=[1, 1, 1])
register_preset("resnet8-mnist", "resnet8", "ResNet-8 for 1x28x28 images", in_channels=1)
register_preset("resnet-mini", "resnet8", "alias of resnet8")

register_preset("char-lstm", "rnn_lm", "character LSTM language model (65 symbols: tinyshakespeare)",
                vocab_size=65, embed_dim=64, hidden_size=256, num_layers=1, cell="lstm")
register_preset("char-gru", "char-lstm", "character GRU language model", cell="gru")

register_preset("gpt-nano", "gpt", "tiny character GPT (~0.1M params): 2 layers, d 64, RoPE",
                vocab_size=65, context_length=128, d_model=64, num_layers=2, num_heads=4, ffn_dim=256,
                positional="rope", dropout=0.0, tie_embeddings=True)
register_preset("gpt-mini", "gpt", "GPT with ~3.2M params: vocab 512, 4 layers, d 256, 8 query / 4 KV heads, RoPE",
                vocab_size=512, context_length=512, d_model=256, num_layers=4, num_heads=8, num_kv_heads=4,
                ffn_dim=1024, positional="rope", dropout=0.0, tie_embeddings=False)

register_preset("seq2seq-mini", "transformer", "encoder-decoder transformer, 2+2 layers, d 128, shared vocab 64",
                src_vocab_size=64, tgt_vocab_size=64, d_model=128, num_heads=4, num_encoder_layers=2,
                num_decoder_layers=2, ffn_dim=256, positional="rope", max_len=128, pad_id=0)
register_preset("transformer-seq2seq-mini", "seq2seq-mini", "alias of seq2seq-mini")

# GPT-2 (Radford et al., 2019) at its published sizes: learned positions, biases, tanh-approximate
# GELU, LayerNorm eps 1e-5, tied head, context 1024. ``plait.zoo.from_pretrained`` loads the
# published weights into these; ``zoo.create("gpt2")`` alone gives random weights.
_GPT2 = dict(vocab_size=50257, context_length=1024, ffn_dim=None, activation={"type": "gelu", "approximate": "tanh"},
             norm={"type": "layer_norm", "eps": 1e-5}, positional="learned", dropout=0.0, tie_embeddings=True,
             bias=True)
register_preset("gpt2", "gpt", "GPT-2 small (124M): 12 layers, d 768, 12 heads", d_model=768, num_layers=12,
                num_heads=12, **_GPT2)
register_preset("gpt2-medium", "gpt", "GPT-2 medium (355M): 24 layers, d 1024, 16 heads", d_model=1024,
                num_layers=24, num_heads=16, **_GPT2)
register_preset("gpt2-large", "gpt", "GPT-2 large (774M): 36 layers, d 1280, 20 heads", d_model=1280,
                num_layers=36, num_heads=20, **_GPT2)
register_preset("gpt2-xl", "gpt", "GPT-2 XL (1.5B): 48 layers, d 1600, 25 heads", d_model=1600, num_layers=48,
                num_heads=25, **_GPT2)

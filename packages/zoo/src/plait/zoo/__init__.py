"""Models by name: MLP, CNN, ResNet, RNN/LSTM/GRU, GPT, Transformer; save/load; generation."""

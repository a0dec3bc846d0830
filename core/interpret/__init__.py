"""Interpretability: measurements on recorded traces and on weights, one job a module — each analysis sits beside
the record set it reads, and none re-implements the forward pass. Pages and the model card call them, so the numbers
on screen and in the card are the same; pages never read a weight or a recorded name themselves.

heads (what each head does), attention_math (one query step by step), embeddings (geometry of tables and streams),
positions (tables, word order, RoPE), attribution (direct logit attribution), norms (a norm step by step), lens
(the forward pass stage by stage, the logit lens), neurons (feed-forward units); and the causal and whole-model
views: flow (information flow), surprisal, saliency, comparison (two models), architecture (the picture's data).
"""

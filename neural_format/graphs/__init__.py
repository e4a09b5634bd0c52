"""Graph algorithms of the format's content: the patch grid, patch selection (pruning) and the
image-KG fusion edge."""

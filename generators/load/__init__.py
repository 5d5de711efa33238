"""Models entering Gauntlet from outside (ONNX files, torch modules), loaded into the graph
IR with their weights and a way to run the original model."""

"""The device peak the GPU benchmarks' MFU is measured against (one value for all of them)."""

#: dense (not 2:4 sparse) fp16/bf16 tensor-core peak of an H100 or H200 SXM, TFLOP/s: the
#: default on CUDA; another device or dtype passes its own with --peak-tflops
H100_PEAK_TFLOPS = 989.4

#pragma once
// Subnormal (denormal) floating-point values: typegrad flushes them to zero by default.
//
// Arithmetic on subnormals (magnitudes below 1.2e-38 in float, 2.2e-308 in double) takes a slow
// microcode path on x86, 50-100x slower per operation. Training produces them as a matter of
// course: Adam's moments of a parameter whose gradient stays 0 (a dead relu unit, a position a
// max pool never picks) decay by beta each step into the subnormal range, and then every step
// spends most of the optimizer's time there (15% of the main example's epoch, measured). Like
// TensorFlow and XLA, typegrad therefore runs its kernels with the CPU's flush-to-zero (FTZ:
// subnormal results become 0) and denormals-are-zero (DAZ: subnormal inputs read as 0) modes.
// Values that small are below the precision of anything a network computes with; training
// results agree to the printed digits (tests/test_denormals.cpp, docs/reliability.md).
//
// The mode is set on every thread for the duration of a kernel (a program's run, a parallel
// loop's chunk, an optimizer step) and restored afterwards, so code outside typegrad that shares
// the threads (a user's own TBB loops) keeps its own mode. On CPUs without these modes (not
// x86-64) the setting has no effect.
namespace typegrad {

// true (the default): kernels flush subnormals to zero. false: IEEE gradual underflow, as in
// PyTorch's default (torch.set_flush_denormal(False)). Takes effect at the next kernel call.
void set_flush_denormals(bool on) noexcept;
bool flush_denormals() noexcept;

}  // namespace typegrad

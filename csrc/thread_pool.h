// effgan's own worker pool for the kernels' parallel loops (used by effgan::parallel_for in params.h).
//
// Why not at::parallel_for (an OpenMP region): libgomp's workers spin-wait at the region's barrier
// and after it, and every thread must reach the barrier. On a machine shared with other processes
// a spinning or descheduled worker then holds up the whole call for whole scheduler time slices:
// two threads ran instance_norm_act several times slower than one. Here the workers sleep on a
// condition variable between calls, and the chunks of a loop are claimed dynamically from a shared
// counter: the calling thread works through the chunks itself and waits only for chunks a worker
// has already claimed, never for a worker that has not started.
//
// The chunk boundaries depend only on the range, the grain and the thread count, and the kernels'
// reductions are cut at fixed block boundaries anyway, so results do not depend on which thread
// runs which chunk.
#pragma once

#include <cstdint>

namespace effgan {

// Runs fn(ctx, b, e) over [begin, end) cut into chunks of at least `grain` indices, on up to
// `threads` threads (the caller included). Runs inline when there is one chunk, one thread, or
// when called from inside another parallel loop (no nesting).
void pool_run(int64_t begin, int64_t end, int64_t grain, int threads, void (*fn)(void*, int64_t, int64_t),
              void* ctx);

}  // namespace effgan

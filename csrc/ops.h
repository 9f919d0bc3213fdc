// The extension's entry points, one header per fused op. Every output is allocated by the Python
// launcher (effgan/ops/_cpp_kernels.py) and passed in; the functions check all arguments first.
#pragma once

#include "adain.h"
#include "cyclegan_loss.h"
#include "diff_augment.h"
#include "dwconv_norm_act.h"
#include "instance_norm_act.h"
#include "se_scale.h"

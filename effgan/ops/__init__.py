"""Fused ops: functional forms and their pure-PyTorch references (``<op>_ref``)."""
from effgan.ops.adain import adain, adain_ref
from effgan.ops.cyclegan_loss import (
    CycleGANLosses,
    cyclegan_generator_loss,
    cyclegan_generator_loss_ref,
    gan_loss_d,
    gan_loss_d_ref,
)
from effgan.ops.diff_augment import DiffAugmentParams, diff_augment, diff_augment_ref, sample_diff_augment_params
from effgan.ops.dwconv_norm_act import dwconv_norm_act, dwconv_norm_act_ref
from effgan.ops.instance_norm_act import instance_norm_act, instance_norm_act_ref
from effgan.ops.se_scale import se_project, se_project_ref, se_scale, se_scale_ref

__all__ = [
    "CycleGANLosses",
    "DiffAugmentParams",
    "adain",
    "adain_ref",
    "cyclegan_generator_loss",
    "cyclegan_generator_loss_ref",
    "diff_augment",
    "diff_augment_ref",
    "dwconv_norm_act",
    "dwconv_norm_act_ref",
    "gan_loss_d",
    "gan_loss_d_ref",
    "instance_norm_act",
    "instance_norm_act_ref",
    "sample_diff_augment_params",
    "se_project",
    "se_project_ref",
    "se_scale",
    "se_scale_ref",
]

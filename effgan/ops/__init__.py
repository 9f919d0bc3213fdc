"""Fused ops: functional forms and their pure-PyTorch references (``<op>_ref``)."""
from effgan.ops.adain import adain, adain_ref
from effgan.ops.instance_norm_act import instance_norm_act, instance_norm_act_ref

__all__ = ["adain", "adain_ref", "instance_norm_act", "instance_norm_act_ref"]

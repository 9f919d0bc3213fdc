"""effgan's model zoo: CycleGAN / pix2pix, EfficientNet-style, StyleGAN-style and DCGAN networks.

``build(name, **kw)`` constructs a registered model, ``list_models()`` names them. Every model
takes ``fused=True`` (effgan's fused modules, ``impl`` passed through) or ``fused=False`` (the
same network from plain torch modules, identical state_dict). See docs/MODELS.md.
"""
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .dcgan_mnist import ConvSpec, MnistDCGANDiscriminator, MnistDCGANGenerator
from .efficientnet import EfficientNetUnetGenerator
from .efficientnet_resnet import EfficientNetResnetGenerator
from .efficientnet_scaling import ScalingRow, StageSpec, preset, scaling_table, stage_list
from .flops import count_flops
from .init import init_weights
from .norm_act import BatchNormLayer, InstanceNormLayer, NoNormLayer
from .patchgan import NLayerDiscriminator, PixelDiscriminator
from .registry import build, list_models
from .resnet import ResnetBlock, ResnetGenerator
from .stylegan import StyleGANGenerator
from .stylegan_layers import EqualConv2d, EqualLinear, MappingNetwork
from .unet import UnetGenerator

__all__ = [
    "BatchNormLayer", "ConvSpec", "DCGANDiscriminator", "DCGANGenerator",
    "EfficientNetResnetGenerator", "EfficientNetUnetGenerator", "EqualConv2d", "EqualLinear",
    "InstanceNormLayer", "MappingNetwork", "MnistDCGANDiscriminator", "MnistDCGANGenerator",
    "NLayerDiscriminator", "NoNormLayer", "PixelDiscriminator", "ResnetBlock", "ResnetGenerator",
    "ScalingRow", "StageSpec", "StyleGANGenerator", "UnetGenerator", "build", "count_flops",
    "init_weights", "list_models", "preset", "scaling_table", "stage_list",
]

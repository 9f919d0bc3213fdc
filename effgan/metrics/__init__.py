"""effgan.metrics: FID, KID, classifier score, C2ST and paired image errors for GAN evaluation.

Every FID/KID number is tagged with its feature extractor ("fid/<extractor>"): the
standard FID InceptionV3 when its weights file is given locally, otherwise a small
FeatureNet that effgan trains on the real data.
"""
from effgan.metrics.c2st import classifier_two_sample_test
from effgan.metrics.classifier_score import classifier_score, generate_balanced, train_score_classifier
from effgan.metrics.cyclegan_eval import evaluate_cyclegan
from effgan.metrics.extractors import build_extractor
from effgan.metrics.feature_net import FeatureNet, load_or_train_feature_net, train_feature_net
from effgan.metrics.features import (FeatureSet, comparable_values, distribution_metrics, extract_features, fid, kid,
                                     lower_is_better, metric_value)
from effgan.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from effgan.metrics.generator_eval import evaluate_generator, evaluate_labelled_generator
from effgan.metrics.image_quality import mae, psnr, ssim
from effgan.metrics.image_sources import collect_images
from effgan.metrics.inception import FIDInceptionV3, load_fid_inception
from effgan.metrics.kid import kernel_inception_distance, mmd2_unbiased
from effgan.metrics.samplers import latent_sampler
from effgan.metrics.train_hooks import CycleGANEvalHook, LatentGeneratorEvalHook

__all__ = [
    "CycleGANEvalHook", "FIDInceptionV3", "LatentGeneratorEvalHook", "latent_sampler",
    "FeatureNet", "FeatureSet", "build_extractor", "classifier_score",
    "classifier_two_sample_test", "collect_images", "comparable_values", "distribution_metrics", "evaluate_cyclegan",
    "evaluate_generator", "evaluate_labelled_generator", "extract_features", "feature_statistics", "fid",
    "frechet_distance", "frechet_distance_from_features", "generate_balanced", "kernel_inception_distance", "kid",
    "load_fid_inception", "load_or_train_feature_net", "lower_is_better", "mae", "metric_value", "mmd2_unbiased",
    "psnr", "ssim", "train_feature_net", "train_score_classifier",
]

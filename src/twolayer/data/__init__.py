"""Data sets: synthetic ones, and two-class subsets of MNIST and CIFAR-10.

``twolayer.data.synthetic`` draws points on the sphere and Gaussian labels (du2019 Section 5);
``twolayer.data.images`` reads the official MNIST and CIFAR-10 files (arora2019 Section 4);
``twolayer.data.span`` writes inputs in a basis of their own span (same training, less work);
``twolayer.data.clusters`` draws the clusters-on-a-grid classification task (bach2022 Section 5.5).
The names used most are re-exported here.
"""

from twolayer.data.clusters import ClusterTask, append_bias, cluster_task
from twolayer.data.images import DataError, load_images, two_class_subset
from twolayer.data.span import span_coordinates
from twolayer.data.synthetic import gaussian_labels, sphere, with_near_parallel_pair

__all__ = [
    "ClusterTask",
    "DataError",
    "append_bias",
    "cluster_task",
    "gaussian_labels",
    "load_images",
    "span_coordinates",
    "sphere",
    "two_class_subset",
    "with_near_parallel_pair",
]

"""Closed-form linear transforms: identity, PCA and a random orthogonal projection."""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

DOUT = Param("dout", int, help="Output dimension", ge=1, le=MAX_DIM, default_text="the input's")

IDENTITY = Spec("identity", "vecspread.transforms.linear.transforms:IdentityTransform", ParamSet(),
                "y = x (no transform; codes on the raw vectors)")
#: the seed of PCA's optional rotation (fixed: ``pca`` takes no --seed, so its runs stay unseeded)
PCA_ROTATION_SEED = 0
PCA = Spec("pca", "vecspread.transforms.linear.transforms:PCATransform", ParamSet(
    DOUT, Param("rotate", bool, False, "Follow the projection by a random rotation of its dout components "
                f"(Haar, seed {PCA_ROTATION_SEED}): the variance then spreads evenly over a product lattice's "
                "blocks, where the leading components would all fall in the first", negatable=True)),
           "centre + project on the dout leading principal components (--rotate: then a random rotation)")
ROTATION = Spec("rotation", "vecspread.transforms.linear.transforms:RotationTransform", ParamSet(
    DOUT, seed_param(0)), "random orthogonal projection (numpy, Haar); for LSH as faiss "
    "draws it use --method lsh")
SPECS = (IDENTITY, PCA, ROTATION)

"""Closed-form linear transforms: identity, PCA and a random orthogonal projection."""

from vecspread.limits import MAX_DIM
from vecspread.params import Param, ParamSet, seed_param
from vecspread.registry import Spec

DOUT = Param("dout", int, help="Output dimension", ge=1, le=MAX_DIM, default_text="the input's")

IDENTITY = Spec("identity", "vecspread.transforms.linear.transforms:IdentityTransform", ParamSet(),
                "y = x (no transform; codes on the raw vectors)")
PCA = Spec("pca", "vecspread.transforms.linear.transforms:PCATransform", ParamSet(DOUT),
           "centre + project on the dout leading principal components")
ROTATION = Spec("rotation", "vecspread.transforms.linear.transforms:RotationTransform", ParamSet(
    DOUT, seed_param(0)), "random orthogonal projection (numpy, Haar); for LSH as faiss "
    "draws it use --method lsh")
SPECS = (IDENTITY, PCA, ROTATION)

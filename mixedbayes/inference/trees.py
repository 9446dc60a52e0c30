"""The groups of a posterior tree that come from the model rather than the sampler."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr

__all__ = ["data_groups"]


def data_groups(idata: xr.DataTree, model: pm.Model) -> xr.DataTree:
    """Set the ``observed_data`` and ``constant_data`` groups from ``model`` (the plain model
    when the sampled one was a marginalised stand-in)."""
    import pymc
    import xarray as xr
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        dict_to_dataset,
        find_constants,
        find_observations,
    )

    coords, dims = coords_and_dims_for_inferencedata(model)
    for group, values in (
        ("observed_data", find_observations(model)),
        ("constant_data", find_constants(model)),
    ):
        ds = dict_to_dataset(
            values, inference_library=pymc, coords=coords, dims=dims, sample_dims=[]
        )
        idata[group] = xr.DataTree(ds)
    return idata

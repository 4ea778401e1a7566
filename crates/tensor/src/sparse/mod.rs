//! Sparse voxel tensors (`feats [N, C]` + int coords `(b, x, y, z)`), as the reference's
//! `SparseTensor`: neighbour maps, submanifold 3×3×3 convolution and channel-to-space upsampling.

mod c2s;
mod conv;
mod coords;

pub use c2s::{c2s_child_index, channel_to_space};
pub use conv::{NO_NEIGHBOR, neighbor_map_3x3x3, submanifold_conv3d};
pub use coords::{SparseCoords, argwhere_3d, unique_sorted};

use std::sync::Arc;

use crate::{Error, Result, Tensor};

/// Features on a set of voxels. Cloning is cheap; coords (and their cached neighbour map) are
/// shared by every tensor derived with `replace`, like the reference's spatial cache.
#[derive(Clone, Debug)]
pub struct SparseTensor {
    pub feats: Tensor,
    pub coords: Arc<SparseCoords>,
}

impl SparseTensor {
    pub fn new(feats: Tensor, coords: Arc<SparseCoords>) -> Result<SparseTensor> {
        if feats.rank() != 2 || feats.dim(0) != coords.len() {
            return Err(Error::shape(
                "SparseTensor",
                format!("feats {:?} for {} coords", feats.shape(), coords.len()),
            ));
        }
        Ok(SparseTensor { feats, coords })
    }

    /// Same voxels, new features (keeps the coords' caches).
    pub fn replace(&self, feats: Tensor) -> Result<SparseTensor> {
        SparseTensor::new(feats, self.coords.clone())
    }

    pub fn len(&self) -> usize {
        self.coords.len()
    }
    pub fn is_empty(&self) -> bool {
        self.coords.is_empty()
    }
    pub fn channels(&self) -> usize {
        self.feats.dim(1)
    }
}

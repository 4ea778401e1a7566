//! The closest-point index over the original surface that the remesh and the bake query: the
//! CPU BVH (the numerical reference), or a tree in device memory whose queries run on the GPU.

use crate::bvh::Bvh;
use crate::gpu::GpuBvh;

/// An owned index (what the GLB steps keep between the surface steps and the bake).
pub enum SurfaceIndex {
    Cpu(Bvh),
    Cuda(GpuBvh),
}

/// A borrowed index, as the remesh and the bake take it.
#[derive(Clone, Copy)]
pub enum Surface<'a> {
    Cpu(&'a Bvh),
    Cuda(&'a GpuBvh),
}

impl SurfaceIndex {
    pub fn as_surface(&self) -> Surface<'_> {
        match self {
            SurfaceIndex::Cpu(b) => Surface::Cpu(b),
            SurfaceIndex::Cuda(g) => Surface::Cuda(g),
        }
    }
}

//! Benchmark mode for random-weight models (`TRELLIS2_BENCH_STRUCTURE=sphere`): the sparse
//! structure is an analytic sphere's surface (as `t2-bench` has it) instead of what the random
//! decoders output, so that token and voxel counts are a trained model's (~2–8 k tokens at
//! 512, ~9.6–14 k at 1024). Replaced: the SS coords, the cascade's HR coords and the shape
//! decoder's subdivision decisions. The networks still run (the same work per job); the mesh
//! service's GLB steps take the sphere's surface in place of the decoder's noise surface.
//! Never set in production.

use std::sync::{Arc, Mutex};

use super::{MAX_NUM_TOKENS, PipelineType};
use crate::decoders::Subdivision;
use crate::error::{ModelError, Result};
use crate::random::shape::{SurfaceShape, cascade_structure};

pub struct BenchStructure;

impl BenchStructure {
    pub const ENV: &'static str = "TRELLIS2_BENCH_STRUCTURE";

    /// The surface `TRELLIS2_BENCH_STRUCTURE` names (`None`: unset, the normal mode).
    pub fn from_env() -> Result<Option<SurfaceShape>> {
        Self::from_flag(std::env::var(Self::ENV).ok().as_deref())
    }

    /// The value of `TRELLIS2_BENCH_STRUCTURE` (`None`: unset).
    pub fn from_flag(v: Option<&str>) -> Result<Option<SurfaceShape>> {
        match v.map(str::trim) {
            None | Some("") => Ok(None),
            Some("sphere") => Ok(Some(SurfaceShape::sphere())),
            Some(v) => Err(ModelError::invalid(format!(
                "{}={v:?}: the only benchmark structure is \"sphere\"",
                Self::ENV
            ))),
        }
    }
}

/// The shape latents' coords and the output resolution benchmark mode gives `ty`: the SS
/// voxels, or for a cascade its HR voxels (with the 49,152-token back-off).
pub fn bench_latent_coords(surface: &SurfaceShape, ty: PipelineType) -> (Vec<[i32; 4]>, u32) {
    match ty {
        PipelineType::Cascade1024 => cascade_structure(surface, 1024, MAX_NUM_TOKENS),
        PipelineType::Cascade1536 => cascade_structure(surface, 1536, MAX_NUM_TOKENS),
        PipelineType::P512 => (surface.voxels(ty.ss_resolution()), 512),
        PipelineType::P1024 => (surface.voxels(ty.ss_resolution()), 1024),
    }
}

/// Structures kept (one per pipeline type a benchmark runs).
const KEPT: usize = 4;

/// The surface's subdivision decisions, made once per structure: host work (0.18 s at 1024 on
/// 16 cores) the product never does, since a trained decoder decides on the device, so it
/// stays off every job but the first with its structure.
#[derive(Default)]
pub(crate) struct BenchSubdivisions {
    made: Mutex<Vec<Made>>,
}

/// One structure's decisions.
struct Made {
    coords: Vec<[i32; 4]>,
    resolution: u32,
    subs: Arc<Vec<Subdivision>>,
}

impl BenchSubdivisions {
    pub fn get(
        &self,
        surface: &SurfaceShape,
        coords: &[[i32; 4]],
        resolution: u32,
        levels: usize,
    ) -> Arc<Vec<Subdivision>> {
        // Held while making one, so that concurrent jobs wait for it rather than repeat it.
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = made
            .iter()
            .find(|m| m.resolution == resolution && m.subs.len() == levels && m.coords == coords)
        {
            return Arc::clone(&m.subs);
        }
        let subs = Arc::new(surface.subdivisions(coords, (resolution / 16) as usize, levels));
        if made.len() == KEPT {
            made.remove(0);
        }
        made.push(Made {
            coords: coords.to_vec(),
            resolution,
            subs: Arc::clone(&subs),
        });
        subs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_structure_is_off_unless_asked_for_the_sphere() {
        assert!(BenchStructure::from_flag(None).unwrap().is_none());
        assert!(BenchStructure::from_flag(Some(" ")).unwrap().is_none());
        let s = BenchStructure::from_flag(Some("sphere")).unwrap().unwrap();
        assert_eq!(s.voxels(32), SurfaceShape::sphere().voxels(32));
        assert!(BenchStructure::from_flag(Some("cube")).is_err());
    }

    #[test]
    fn subdivisions_are_made_once_per_structure() {
        let surface = SurfaceShape::sphere();
        let cache = BenchSubdivisions::default();
        let (coords, res) = bench_latent_coords(&surface, PipelineType::P512);
        let a = cache.get(&surface, &coords, res, 2);
        assert!(Arc::ptr_eq(&a, &cache.get(&surface, &coords, res, 2)));
        assert_eq!(*a, surface.subdivisions(&coords, 32, 2));
        // Another structure (fewer coords) is made afresh.
        let b = cache.get(&surface, &coords[1..], res, 2);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(b[0].parents.len(), coords.len() - 1);
    }
}

//! O-Voxel to mesh, remesh, decimation, UV, texture bake, GLB and previews

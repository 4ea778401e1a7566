//! The signed, versioned state format between /generate and /extract_glb

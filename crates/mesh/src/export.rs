//! OBJ and PLY export.

//! Image decoding with limits and Pillow-exact resampling, crop and premultiply

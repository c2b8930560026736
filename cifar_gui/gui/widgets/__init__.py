"""Small reusable Qt pieces: image conversion, image grids, the thumbnail model, zoom dialog."""

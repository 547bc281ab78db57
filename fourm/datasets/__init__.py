"""Raw datasets written as webdataset shards: the procedural 3D scenes (`fourm.datasets.scenes`),
packing a user's folder of aligned files (`pack`) and contact-sheet previews (`preview`)."""

"""Result files: the band reader, the COG/GeoPackage writers and the result-directory schema."""

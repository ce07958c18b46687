"""Object-store paths and Parquet files, through pyarrow.fs (a local folder, or S3)."""

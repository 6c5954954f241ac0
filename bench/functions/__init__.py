"""Functions the bench serves beside the real ones (never deployed: vercel.json excludes bench/)."""

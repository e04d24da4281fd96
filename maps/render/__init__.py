"""Reading a result directory and drawing it: the offline map page and the agency report."""

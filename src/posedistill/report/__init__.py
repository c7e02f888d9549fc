"""Results report: tables and accuracy-vs-cost plots from run directories."""

"""Exploratory data analysis of sample tables (class balance, subjects, sample faces)."""

"""Rhythm goals: OKRs and KPIs that stay in view."""

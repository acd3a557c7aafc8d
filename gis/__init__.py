"""Pure geometry for Yiwang: coordinates, areas, geofences, trajectories and routing."""

"""From trained encoders to the visualizations: encoding songs, mappings fitted on the train
partitions, and parameter timelines in [0, 1] (plus the DSP baseline)."""

"""The networks: the ADM UNet, its first-step noise, the student and the teacher."""

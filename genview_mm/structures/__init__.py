"""Types shared by the layers above (as mmpretrain's ``structures``): the views manifest.

Light on purpose: importing it builds neither the models nor the generation pipeline."""

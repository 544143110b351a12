"""Learning words by drawing images: a GAN of the shapes world, its dissection, unit editing and word learning.

Introduced in notebook 03_drawing_gan_units.
"""

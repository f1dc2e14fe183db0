"""The GAN: pix2pixHD-style networks conditioned on the previous frame, EDN's temporal and face
discriminators, the losses and the VGG19 perceptual network (see networks.py, losses.py, vgg.py)."""

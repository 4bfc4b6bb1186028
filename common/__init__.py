"""Thin shared plumbing for the GAN paper folders: what any GAN needs, nothing of a paper's maths.

README.md in this folder lists each module, what it offers a folder, and the rule for what
belongs here.
"""

"""The pooling zoo: one operator per module, each an ``nn.Module`` whose ``forward`` takes feature maps
``N x C x H x W`` and returns ``N x D`` (extra inputs, such as learned weights, come through the constructor).

Modules: ``global_pool`` (average, max, GeM), ``spatial`` (sum/max over grids), ``autopool`` (learned
non-negative pooling matrix), ``group_l2`` (L2 pooling over channel groups), ``window`` (sliding-window and
pyramid max pooling), ``crosslayer`` (conv t features weighted by conv t+1 channels), ``entropy`` (locations
weighted by the entropy of their class prediction).
"""

"""The local cloud: the synthesized stack provisioned into moto, with small tested shims where moto lacks a
behaviour, so the whole lifecycle runs offline (``mlops demo``, ``mlops local up``)."""
